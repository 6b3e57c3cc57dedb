# RFC 5463 section 6
require ["ihave", "fileinto"];
if ihave "fileinto" { fileinto "have-fileinto"; }
if ihave "x-no-such-extension" {
    frobnicate "this is never checked";
}
if ihave ["vacation", "relational"] {
    if header :count "ge" "to" "1" { fileinto "relational-through-ihave"; }
}
if not ihave "x-nothing" { fileinto "not-have"; }
