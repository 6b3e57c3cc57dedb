require ["fileinto"];
fileinto "lists.python";
