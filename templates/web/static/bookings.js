// bookings pages
"use strict";
