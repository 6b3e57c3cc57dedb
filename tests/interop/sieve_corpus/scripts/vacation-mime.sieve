require ["vacation"];
vacation :mime :days 2 text:
Content-Type: text/plain; charset=utf-8

Je suis en vacances.
.
;
