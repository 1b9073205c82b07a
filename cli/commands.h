#pragma once

namespace plinth::cli {

int train_command(int argc, char** argv);
int eval_command(int argc, char** argv);
int predict_command(int argc, char** argv);
int info_command(int argc, char** argv);
int bench_command(int argc, char** argv);
int layers_command(int argc, char** argv);
int data_command(int argc, char** argv);
int export_command(int argc, char** argv);

}  // namespace plinth::cli
