// nudge-model: the seed article's polling arithmetic and its Poisson expectation.
#include <iostream>

#include "nudge/model/seed_model.hpp"

int main(int argc, char** argv) { return nudge::model::model_main(argc, argv, std::cout, std::cerr); }
