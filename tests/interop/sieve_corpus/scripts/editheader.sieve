# RFC 5293 section 8 (and tests seeing the edits)
require ["editheader", "fileinto", "variables", "relational"];
addheader "X-Source" "sieve";
addheader :last "X-Trace" "added last";
if header :is "x-source" "sieve" { fileinto "sees-added"; }
deleteheader "x-priority";
if not exists "x-priority" { fileinto "priority-gone"; }
deleteheader :matches "x-count" "1*";
if header :count "eq" "x-count" "2" { }
deleteheader :index 1 "received";
deleteheader "received";
if exists "received" { fileinto "received-protected"; }
if header :matches "subject" "*" { deleteheader "subject"; addheader "Subject" "[tagged] ${1}"; }
if header :contains "subject" "[tagged]" { fileinto "retagged"; }
