require ["fileinto", "envelope"];
if size :over 500 { fileinto "big"; }
if size :under 300 { fileinto "small"; }
if exists ["From", "Date"] { fileinto "has-from-date"; }
if not exists "X-Nope" { fileinto "no-x-nope"; }
if envelope :domain :is "from" "desert.example.org" { fileinto "env-desert"; }
if envelope :localpart :matches "to" "me*" { fileinto "env-me"; }
if header :contains "subject" ["present", "MILLION"] { fileinto "subject-word"; }
if address :localpart :is "from" "coyote" { fileinto "from-coyote"; }
if header :matches "x-priority" "?" { fileinto "prio-one-char"; }
if allof (true, not false) { fileinto "logic"; }
