# RFC 5260 sections 4 and 5
require ["date", "relational", "fileinto", "variables"];
if date :is "date" "year" "1997" { fileinto "y1997"; }
if date :value "ge" :originalzone "date" "hour" "09" { fileinto "local-morning"; }
if date :zone "+0000" "date" "date" "*" { }
if date :matches :zone "+0000" "date" "iso8601" "*" { fileinto "iso-${1}"; }
if date :matches :originalzone "date" "std11" "*" { set "std" "${1}"; }
if date :is :zone "-0800" "date" "time" "09:06:31" { fileinto "pst-time"; }
if date :is "date" "weekday" "2" { fileinto "tuesday"; }
if date :matches "date" "julian" "*" { fileinto "mjd-${1}"; }
if date :is :originalzone "date" "zone" "-0800" { fileinto "zone-pst"; }
if date :is "date" "month" "02" { fileinto "february"; }
if date :is "date" "day" "29" { fileinto "leap-day"; }
if date :matches "received" "date" "*" { fileinto "received-${1}"; }
if currentdate :value "gt" "year" "2020" { fileinto "now-after-2020"; }
if date :matches "date" "second" "*" { fileinto "sec-${1}"; }
