#!/usr/bin/env node
// Committed shim so npm can link the bin before the package is built.
import '../dist/main.js';
