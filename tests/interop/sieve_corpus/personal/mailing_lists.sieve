require ["include", "fileinto"];
if header :is "Sender" "owner-ietf-mta-filters@example.org" { fileinto "lists.sieve"; }
elsif header :contains "list-id" "python" { include :personal "python_list"; }
