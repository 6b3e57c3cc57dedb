redirect "a@example.net";
redirect "b@example.net";
redirect "<a@example.net>";
redirect "c@example.net";
redirect "d@example.net";
if header :contains "subject" "present" { redirect "e@example.net"; }
