require ["regex", "variables", "fileinto"];
if header :regex "subject" "^(I|You) (have|too)" { fileinto "r1-${1}-${2}"; }
if address :regex :domain "from" "^[[:alpha:]]+\\.example\\.(org|net)$" { fileinto "r2-${1}"; }
if header :regex :comparator "i;octet" "subject" "PRESENT" { fileinto "r3-octet"; }
if header :regex "subject" "[0-9]{2}" { fileinto "r4-two-digits"; }
if header :regex "from" "^[^<]*<([a-z]+)@" { fileinto "r5-${1}"; }
if header :regex "x-spam-status" "score=([0-9.]+)" { fileinto "score-${1}"; }
if header :regex "message-id" "<(.*)@(.*)>" { fileinto "mid-${2}"; }
if not header :regex "subject" "^$" { fileinto "r6-nonempty"; }
