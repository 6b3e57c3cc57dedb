require ["fileinto"];
if header :contains "subject" "x" { frobnicate; }
