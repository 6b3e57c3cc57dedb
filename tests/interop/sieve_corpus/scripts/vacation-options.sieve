require ["vacation", "variables"];
if header :matches "subject" "*" { set "subject" "${1}"; }
vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
  :subject "Re: ${subject}" :from "Tim <tjs@example.edu>" :handle "away-${subject}"
  "I'm away until October 19.";
