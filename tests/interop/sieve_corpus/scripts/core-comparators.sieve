require ["fileinto"];
if header :comparator "i;octet" :contains "subject" "present" { fileinto "octet-lower"; }
if header :comparator "i;octet" :contains "subject" "PRESENT" { fileinto "octet-upper"; }
if header :comparator "i;ascii-casemap" :is "to" "ROADRUNNER@ACME.EXAMPLE.COM" { fileinto "casemap"; }
if header :matches "subject" "*\\?*" { fileinto "escaped-q"; }
if header :matches "subject" "I*" { fileinto "starts-i"; }
