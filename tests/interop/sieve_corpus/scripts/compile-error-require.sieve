require ["x-not-an-extension"];
keep;
