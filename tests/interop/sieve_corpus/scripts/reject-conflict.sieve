require ["reject", "fileinto"];
fileinto "x";
if true { reject "no"; }
