/** @cilia/resources */
