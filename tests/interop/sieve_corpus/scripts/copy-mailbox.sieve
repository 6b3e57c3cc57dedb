require ["fileinto", "copy", "mailbox"];
fileinto :copy "archive";
if mailboxexists "Partners" { fileinto :create "Partners"; }
if mailboxexists ["Partners", "Nope"] { fileinto "both"; }
redirect :copy "archive@example.net";
