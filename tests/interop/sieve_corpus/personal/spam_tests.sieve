require ["reject"];
if header :contains "Subject" "XXXX" { reject "Subject XXXX is unacceptable."; }
