require ["environment", "fileinto"];
if environment :is "x-unknown-item" "x" { fileinto "never"; }
if not environment :contains "x-unknown-item" "" { fileinto "unknown-false"; }
