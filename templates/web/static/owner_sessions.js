// owner: active sessions and slot monitoring
"use strict";
