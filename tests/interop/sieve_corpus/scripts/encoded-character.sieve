require ["encoded-character", "fileinto"];
if header :contains "subject" "${hex:70 72 65 73 65 6e 74}" { fileinto "hex-present"; }
if header :contains "subject" "${unicode:e9}t${unicode:00e9}" { fileinto "ete"; }
fileinto "${unicode:263a}";
