/* === monitor: implementation === */
#include "09_monitor.h"
