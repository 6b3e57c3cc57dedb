require ["ihave"];
if header :contains "subject" "present" { error "presents are not allowed"; }
keep;
