# RFC 7352 section 4 (a duplicate store never seen here, so false)
require ["duplicate", "fileinto", "mailbox"];
if duplicate { fileinto :create "Trash/Duplicate"; }
if duplicate :header "subject" :handle "subj" :seconds 3600 { discard; }
if not duplicate :uniqueid "x" :last { fileinto "first-seen"; }
