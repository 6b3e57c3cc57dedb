# RFC 5229 sections 3, 4 and 5
require ["variables", "fileinto", "relational"];
set "honorific"  "Mr";
set "first_name" "Wile";
set "last_name"  "Coyote";
set "vacation" text:
Dear ${HONORIFIC} ${last_name},
I'm out, please leave a message after the meep.
.
;
if string :contains "${vacation}" "Mr Coyote" { fileinto "text-ok"; }
set "a" "juMBlEd lETteRS";
set :length "b" "${a}";
set :lower "c" "${a}";
set :upper "d" "${a}";
set :lowerfirst "e" "${a}";
set :upperfirst :lower "f" "${a}";
set :quotewildcard "g" "Rock*";
fileinto "${b}-${c}-${d}-${e}-${f}";
if string :matches "${g}" "Rock\\*" { fileinto "quoted"; }
if header :matches "Subject" "*present*" { fileinto "before-${1}-after-${2}"; }
if string :is "${unknown}" "" { fileinto "unknown-empty"; }
set "x" "${x}y${x}";
if string :count "eq" ["${x}", "", "z"] "2" { fileinto "count-nonempty"; }
