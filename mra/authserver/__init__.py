"""Password checks for an MTA's SMTP AUTH, over the two sockets MTAs know how to ask.

* `mra.authserver.dovecot`: the Dovecot auth protocol (`[listen] auth`), which Postfix's
  `smtpd_sasl_type = dovecot` and Exim's `dovecot` authenticator speak: the whole SASL exchange
  (PLAIN, LOGIN, and CRAM-MD5 / SCRAM-SHA-256 where the stored hashes allow) runs here.
* `mra.authserver.saslauthd`: the saslauthd protocol (`[listen] saslauthd`), which Cyrus SASL
  asks with `pwcheck_method: saslauthd` (sendmail's SMTP AUTH, Cyrus IMAP...): one login and
  password a connection, answered "OK" or "NO".

Both are sans-I/O sessions (mra/session.py) registered in the server's protocol table
(mra/net/server.py `PROTOCOLS`), so how their socket is opened is not their business. They use
what IMAP and POP3 use (mra/auth): the same user database and password schemes
(`Authenticator`), the same throttles and failure delay (`AuthThrottle`), and the same pool of
`[auth] max_concurrent_hashes` threads for the hashing. The client of these sockets is the MTA,
trusted by the socket's permissions; the throttles count the SMTP client behind it (the
`rip=` of a Dovecot request) and the login name, never the MTA's own address.
"""
