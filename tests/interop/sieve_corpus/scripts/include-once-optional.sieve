require ["include", "variables", "fileinto"];
include :optional "does_not_exist";
include :once "counter";
include :once "counter";
include "counter";
global "count";
fileinto "count-${count}";
