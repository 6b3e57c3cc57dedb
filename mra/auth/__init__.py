"""Authentication for the servers, without I/O: password schemes, SASL, throttling.

* `mra.auth.passwords`: verify and make Dovecot `{SCHEME}hash` strings.
* `mra.auth.sasl`: the SASL exchanges (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256) shared by IMAP
  AUTHENTICATE and POP3 AUTH.
* `mra.auth.throttle`: failure delays, failure throttles and connection limits.
* `mra.auth.authenticator`: the glue between the user database and the above.

Nothing here does I/O of its own or imports Twisted: slow steps (password hashing) are handed
back to the caller to run where it likes, typically in a thread pool.
"""
