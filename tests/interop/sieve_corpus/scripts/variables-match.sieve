require ["variables", "fileinto"];
if header :matches "from" "*@*" { set "user" "${1}"; set "domain" "${2}"; }
if address :matches "to" "*@*.*" { fileinto "to-${1}-${2}-${3}"; }
if header :matches "subject" "* ?* *" { fileinto "w-${1}|${2}|${3}|${4}"; }
fileinto "from-${domain}";
if header :matches "date" "*, * * * *" { fileinto "day-${2}-${3}"; }
if string :matches "${user}" "*coyote*" { fileinto "u-${user}"; }
