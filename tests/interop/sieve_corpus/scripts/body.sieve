# RFC 5173
require ["body", "fileinto"];
if body :raw :contains "MAKE MONEY FAST" { discard; }
if body :contains "birdseed" { fileinto "birdseed"; }
if body :text :contains "budget" { fileinto "budget-text"; }
if body :content "text/html" :contains "<b>" { fileinto "html-b"; }
if body :content "application/pdf" :contains "PDF" { fileinto "pdf"; }
if body :content "text" :contains "caf" { fileinto "cafe"; }
if body :raw :contains "=C3=A9t=C3=A9" { fileinto "raw-qp"; }
if body :content "text/plain" :contains "120 EUR" { fileinto "nested-amount"; }
if body :matches "*MONEY*" { fileinto "money"; }
