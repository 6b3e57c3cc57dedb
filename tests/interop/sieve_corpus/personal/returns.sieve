require ["include", "fileinto"];
fileinto "in-include";
if true { return; }
fileinto "never";
