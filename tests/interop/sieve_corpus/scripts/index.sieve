# RFC 5260 section 6
require ["date", "index", "fileinto", "variables"];
if header :index 2 :matches "x-count" "*" { fileinto "second-x-${1}"; }
if header :index 1 :last :is "x-count" "abc" { fileinto "last-abc"; }
if address :index 2 :is "from" "second-from@example.net" { fileinto "second-from"; }
if date :index 1 :last :matches "received" "time" "*" { fileinto "first-hop-${1}"; }
if date :index 1 :matches "received" "time" "*" { fileinto "last-hop-${1}"; }
if header :index 5 :matches "x-count" "*" { fileinto "nothing"; }
