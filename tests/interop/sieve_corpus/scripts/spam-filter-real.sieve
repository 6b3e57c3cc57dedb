# A Roundcube-style filter set (managesieve plugin output)
require ["fileinto","imap4flags","regex","relational","comparator-i;ascii-numeric"];
# rule:[Spam]
if anyof (header :contains "x-spam-flag" "YES", header :regex "x-spam-level" "^\\*{5,}")
{
	fileinto "Junk";
	stop;
}
# rule:[lists]
if exists "list-id"
{
	addflag "\\Seen";
	fileinto "Lists";
}
# rule:[boss]
if address :is "from" ["boss@example.com", "coyote@desert.example.org"]
{
	addflag "\\Flagged";
}
