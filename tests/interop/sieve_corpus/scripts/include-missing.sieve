require ["include"];
include :personal "does_not_exist";
keep;
