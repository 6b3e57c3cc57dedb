# A Thunderbird sieve add-on style filter
require ["fileinto", "envelope", "subaddress", "variables", "mailbox"];
if envelope :detail :matches "to" "*" {
    if string :is "${1}" "" { } else { fileinto :create "Plus.${1}"; stop; }
}
if header :contains "List-Id" "python.example" { fileinto :create "Lists.python"; stop; }
if address :domain :is "from" ["example.org", "example.net"] { fileinto "Known"; }
