// driver pages
"use strict";
