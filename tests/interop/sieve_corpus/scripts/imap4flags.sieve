# RFC 5232 section 6 (adapted)
require ["fileinto", "imap4flags", "variables"];
if size :over 1000 { setflag "\\Deleted"; }
if header :contains "from" "coyote" { addflag ["\\Flagged", "\\Answered"]; }
if header :contains "subject" "present" { removeflag "\\Answered"; fileinto "gifts"; }
addflag "MyVar" "$Important";
if hasflag :contains "MyVar" "import" { fileinto :flags "${MyVar} extra" "tagged"; }
if hasflag "\\Flagged" { keep :flags "\\Seen"; }
