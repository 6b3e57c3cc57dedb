# RFC 6131 section 4
require ["vacation-seconds"];
vacation :seconds 1800 :handle "short"
  "I am in a meeting, and do not have access to email.";
