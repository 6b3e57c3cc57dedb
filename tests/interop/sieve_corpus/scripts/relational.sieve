# RFC 5231 section 6
require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"] { fileinto "urgent"; }
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] { fileinto "many"; }
if header :count "eq" :comparator "i;ascii-numeric" "x-count" "3" { fileinto "three-x"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-count" "10" { fileinto "x-gt-10"; }
if header :value "ge" :comparator "i;ascii-numeric" "x-count" "abc" { fileinto "x-inf"; }
if header :value "lt" "subject" "j" { fileinto "subject-lt-j"; }
if header :count "ne" "received" "0" { fileinto "received"; }
if header :value "eq" :comparator "i;octet" "x-spam-level" "*******" { fileinto "seven-stars"; }
