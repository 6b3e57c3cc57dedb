# RFC 5703 sections 3, 4 and 7
require ["mime", "foreverypart", "fileinto", "variables", "extracttext"];
foreverypart {
    if header :mime :subtype "content-type" "pdf" { fileinto "has-pdf"; }
    if header :mime :param "filename" :matches "content-disposition" "*.txt" { fileinto "txt-attachment"; }
    if header :mime :contenttype "content-type" "text/html" { fileinto "has-html"; }
}
if header :mime :type "content-type" "multipart" { fileinto "top-multipart"; }
if header :mime :anychild :contenttype "content-type" "text/html" { fileinto "anychild-html"; }
if exists :mime :anychild "content-disposition" { fileinto "any-disposition"; }
foreverypart :name "outer" {
    if header :mime :type "content-type" "text" {
        extracttext :first 8 "start";
        fileinto "text-${start}";
        break :name "outer";
    }
}
