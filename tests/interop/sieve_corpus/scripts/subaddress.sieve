# RFC 5233 section 5
require ["envelope", "subaddress", "fileinto"];
if envelope :user "to" "me" {
    if envelope :detail "to" "lists" { fileinto "lists"; }
    elsif envelope :detail "to" "" { fileinto "empty-detail"; }
}
if address :detail "reply-to" "inbox" { fileinto "reply-detail"; }
if address :user "reply-to" "replies" { fileinto "reply-user"; }
