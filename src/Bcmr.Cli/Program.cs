System.Console.WriteLine("bcmr");
