# RFC 5230 section 4.1 and 4.5
require ["vacation", "fileinto"];
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}
