# RFC 6609 section 5
if address :is "from" "boss@example.com" {
    keep;
}
