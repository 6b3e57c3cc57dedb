# RFC 5435 section 9, RFC 5436
require ["enotify", "fileinto", "variables"];
if header :contains "from" "coyote" {
    notify :importance "1" :message "This is probably very important"
        "mailto:alm@example.com";
    stop;
}
if header :contains "to" "sievemailinglist@example.org" {
    if header :matches "Subject" "*" { set "subject" "${1}"; }
    if header :matches "From" "*" { set "from" "${1}"; }
    notify :importance "3" :message "[SIEVE] ${from}: ${subject}"
        "mailto:alm@example.com";
    fileinto "INBOX.sieve";
}
if valid_notify_method "mailto:a@example.com?subject=x" { fileinto "valid"; }
if not valid_notify_method ["mailto:a@example.com", "xmpp:a@example.com"] { fileinto "invalid"; }
if notify_method_capability "mailto:a@example.com" "online" "maybe" { fileinto "online-maybe"; }
set :encodeurl "enc" "a b&c/é";
fileinto "enc-${enc}";
notify "mailto:bob@example.com?to=carol@example.com&cc=dave@example.com";
