// owner pages
"use strict";
