# RFC 5235 sections 3.1, 3.2 and 3.3, with a scanner's X-Spam-Score (max 10) and X-Virus-Scan
require ["spamtest", "spamtestplus", "virustest", "fileinto", "relational",
         "comparator-i;ascii-numeric", "variables"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "not-tested"; }
elsif spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto "Junk"; }
elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3" { fileinto "Maybe"; }
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "over-half"; }
if spamtest :percent :matches "*" { fileinto "percent-${1}"; }
if spamtest :matches "*" { fileinto "score-${1}"; }
if virustest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "virus-untested"; }
elsif virustest :value "ge" :comparator "i;ascii-numeric" "4" { fileinto "Quarantine"; }
if virustest :matches "*" { fileinto "virus-${1}"; }
if spamtest "1" { fileinto "clean-by-default-comparator"; }
