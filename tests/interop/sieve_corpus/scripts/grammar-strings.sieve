require ["fileinto"];
/* a bracket comment
   over lines */
if header :is "subject" "I have a present for you" # hash comment
{ fileinto "exact"; }
if header :contains ["to", "cc", "bcc"] ["carrot", "acme"] { fileinto "\"quoted\" \\ name"; }
if header :is "x-nope" text:
..dot-stuffed
.
{ fileinto "never"; }
