/* Uses the installed C API found through pkg-config. */
#include <braid/braid.h>
#include <stdio.h>

int main(void) {
  int version = 0;
  if (braidGetVersion(&version) != braidSuccess) return 1;
  printf("consumer_pkgconfig: Braid version code %d\n", version);
  return version == BRAID_VERSION_CODE ? 0 : 1;
}
