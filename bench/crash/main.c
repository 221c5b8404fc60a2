/* kvlab-crash: the crash checker as a program of its own (the same as `kvlab crash ...`), for
 * builds without the kvlab command and for the checker's own tests. */
#include "crash.h"

int main(int argc, char **argv)
{
    return kvlab_cmd_crash(argc - 1, argv + 1);
}
