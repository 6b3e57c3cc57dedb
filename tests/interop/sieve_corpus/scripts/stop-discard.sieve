require ["fileinto"];
if header :contains "subject" "MILLIONAIRE" { discard; stop; }
fileinto "after";
if true { stop; }
fileinto "never";
