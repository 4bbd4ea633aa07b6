/* The native baseline of the start benchmark: a static "hello" for runc. */
#include <unistd.h>
int main(void) {
    static const char msg[] = "hello from native\n";
    return write(1, msg, sizeof msg - 1) < 0;
}
