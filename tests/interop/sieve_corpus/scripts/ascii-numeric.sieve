require ["comparator-i;ascii-numeric", "fileinto", "relational"];
if header :is :comparator "i;ascii-numeric" "x-priority" "003" { fileinto "prio-3"; }
if header :is :comparator "i;ascii-numeric" "x-count" "15" { fileinto "fifteen"; }
if header :is :comparator "i;ascii-numeric" "subject" "numbers" { fileinto "both-infinite"; }
if header :value "le" :comparator "i;ascii-numeric" "x-spam-score" "7" { fileinto "score-le-7"; }
